"""The API's own fixed names: the upload rules of the original app's contract. The queue protocol's names, shared
with the workers, are in resnet_common.protocol."""

ALLOWED_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif"})
