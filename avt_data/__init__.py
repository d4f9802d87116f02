"""Reading triplet datasets: what both training and evaluation need (dataset arguments, decoding one row)."""
