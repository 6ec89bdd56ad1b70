// Package treeincr makes and checks incremental tree checkpoints (docs/incremental.md, "Container
// checkpoints"): the image-level half of treefmt's parent records, kept apart from treefmt so that
// treefmt (which the guest tool's early start imports) does not import imgfmt.
package treeincr
