"""omnigate gateway: the aiohttp application, reply delivery, settings and the CLI."""
