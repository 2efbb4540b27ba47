"""How the flows run: prefect.yaml, serving, the OAuth callback, automations, the demo."""
