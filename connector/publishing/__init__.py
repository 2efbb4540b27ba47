"""Publishing items to Nomi: the queue, claims and outbox, payloads, batches."""
