"""The event-bus server: the HTTP API, the WebSocket stream and the page over an embedded store."""
