"""hotelbot: database tooling for the multi-tenant hotel-guest WhatsApp bot."""

__version__ = "0.1.0"
