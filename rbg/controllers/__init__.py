"""Controllers, one subpackage per kind: thin I/O around the pure desired-state builders."""
