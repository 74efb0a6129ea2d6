"""The service's HTTP side: console, REST API, OAuth redirect endpoint, health."""
