"""The protocol layer, pure (no I/O, no httpx): signing, requests and both envelopes, IVA multipart, the
capability catalog, input limits and encoding, GetResult options, the retry decision."""
