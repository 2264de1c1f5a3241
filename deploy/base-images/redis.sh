# local/redis:7: Debian's redis-server, as the official image runs it (user redis, working directory /data).
mkdir -p /data && chown redis:redis /data
