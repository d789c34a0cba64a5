"""Google Cloud provisioning: `sublim gcp provision` creates the topics and subscriptions
of a deployment up front (the `pubsub://` broker creates its layout itself at run time, through
`sublim.engines.pubsub`)."""
