"""Persona-guided synthesis: personas -> brainstormed tasks -> one JSON example per task
(``kalm-data generate``), and generate + curate as one job (``kalm-data synthesize``)."""
