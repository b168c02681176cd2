// Package e2e holds end-to-end tests of the real conveyor binary: they build
// it once, start `conveyor server` processes on random local ports (SQLite or
// the test PostgreSQL, jobs on the host backend, repositories as file://
// git repositories), send signed webhooks, kill, stop and restart servers,
// and check what users would see through the REST API and what the jobs
// themselves recorded on disk.
//
// The package has no code of its own: only tests.
package e2e
