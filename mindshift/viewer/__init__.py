"""The trial browser's page: its HTML shell (`page`), stylesheet (`style`) and script
(`script`), all inlined into one file that needs no network. `mindshift.view` fills it with a
run's data."""
