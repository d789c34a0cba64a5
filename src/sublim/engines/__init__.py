"""Engine plumbing: what a store and a broker of one engine share (connections,
migrations, wake-ups, layouts), one module per engine."""
