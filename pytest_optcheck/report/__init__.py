"""The report: results gathered per session, a picture per check, index.html and
summary.json. matplotlib is imported only when a picture is drawn."""
