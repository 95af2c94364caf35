"""Security activity (DESIGN §20): what happened to an account, recorded with the change,
shown in words on the devices page, as JSON and by ``flask lucia activity``."""
