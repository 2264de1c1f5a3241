"""Serving peers (BentoML, Ray Serve, MLServer) run side by side with this service: make bench-peers."""
