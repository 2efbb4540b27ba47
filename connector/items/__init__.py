"""Items of a business: intake from files, images, edits, and their review context."""
