"""Synthesizers: modules with typed ports, a modular DAG patch, presets and synth models."""
