"""Code the API, the model workers and the conversion CLI share, installed once into each environment.

- `protocol`: the Redis names and values of the queue protocol (docs/queue-protocol.md).
- `settings`: the loader behind each service's `settings.py` (typed fields, read from the environment), and
  the fields both services read (`SharedSettings`: the Redis connection, the heartbeat TTL, the pixel limit).
- `redis_conn`: a Redis client for those fields, direct or through Sentinel.
- `preprocess`: image bytes → the ResNet50 input, bit-identical to Keras.
- `repository_layout`: the model repository on disk (version folders, model cards).
- `model_control`: the live version policy in Redis (pin, unloaded) that the load/unload routes set.
- `shed_sizing`: the admission bound and Retry-After from the fleet's measured rate (`make run`, the report).
"""
