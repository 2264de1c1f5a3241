"""Response cache, read side: an identical request is answered from Redis without inference.

Identical means same image bytes, same model file, same preprocessing mode, same top_k, same explain flag: the
key is resnet_common.protocol.cache_key(model hash, request_digest() of the rest). Workers write the entries
(model/job_queue.py, bounded in bytes and by a TTL, see docs/queue-protocol.md); the API only looks them up, in the
round trip that queues the misses (job_enqueue.py). The model's hash comes from the live workers' heartbeats: if
they do not all serve the same model file (a rollout in progress) or none is alive, nothing is served from the
cache, so a new model never serves an old answer. RESPONSE_CACHE=0 turns it off.
"""

import hashlib


def request_digest(image_sha256: str, preprocess: str, top_k: int, explain: bool = False) -> str:
    """Everything that decides the answer except the model: the job carries it; the worker adds its model."""
    text = f"{image_sha256}|{preprocess}|{int(top_k)}|{int(bool(explain))}"
    return hashlib.sha256(text.encode()).hexdigest()
