"""Publishing stored events to brokers (NATS JetStream, RabbitMQ), past a checkpoint."""
