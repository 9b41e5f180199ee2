"""``specgate diff``: the breaking-change checker for versioned HOCON specs (design: docs in README).

Pipeline: ``inputs`` loads each side (directory, ``git:REV[:path]`` or lock file) into the IR;
``compare`` enumerates pin points per action and asks ``schemas`` to diff effective request and
response schemas with their direction; ``modifiers`` applies unreleased/internal/strict/override rules;
``waivers`` marks accepted findings; ``formats`` renders the one list of findings as text, JSON,
Markdown or GitHub annotations.
"""
