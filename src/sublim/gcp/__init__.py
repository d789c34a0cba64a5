"""Google Cloud: the Pub/Sub layout shared by the `pubsub://` broker and `sublim gcp provision`."""
