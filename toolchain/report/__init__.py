"""Presentation: the terminal and Markdown table writers (`table`), PNG plots (`plots`), report pages (`document`),
and a threshold sweep's table, files and plot (`sweep`)."""
