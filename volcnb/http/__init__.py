"""The HTTP layer: signed calls over httpx, retries, result downloads, IVA uploads, where keys come from."""
