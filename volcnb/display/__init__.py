"""The display layer: notebook views, terminal progress, plots; they observe tasks, never poll them."""
