// Package actcompat runs act's own runner test workflows (nektos/act,
// pkg/runner/testdata, read in place from the compat folder) through
// Conveyor's executor on the host and Docker backends and checks each case's
// expected outcome. It holds tests only.
package actcompat
