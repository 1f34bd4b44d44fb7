"""Install artefacts made from the code: the Helm chart's generated templates (D44)."""
