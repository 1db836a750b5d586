"""Deploying the proxy to Azure: the wheel it runs, the bootstrap that starts it, the template."""
