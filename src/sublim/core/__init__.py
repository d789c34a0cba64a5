"""The core: the domain (tasks, executions, statuses, the transition table), its
policies, and the use cases over the Store and Broker protocols. No I/O of its own;
it never imports a backend (they are loaded by URL scheme: `core.backends`)."""
