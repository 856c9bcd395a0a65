"""Model preparation: the manifest of the model we ship and the code that fetches it."""
