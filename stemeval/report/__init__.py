"""What the commands print and write about results: the published output (``published``,
byte for byte), other text reports (``text``), plots (``plots``) and JSON (``json_report``).
The numbers themselves come from ``stemeval.scoring.metrics``."""
