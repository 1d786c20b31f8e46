"""Recording frameworks' trainers: ``integrations.lightning`` and ``integrations.hf`` each
import their framework when imported, and nothing imports them but a user (or
``optcheck.callback(...)``): neither framework is a dependency of the plugin."""
