"""The activation portal (docs/PRODUCT.md): a small web site, served by the bot's own process, where
families activate their account, log in, and recover a forgotten password or identifier."""
