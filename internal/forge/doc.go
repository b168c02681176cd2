// Package forge speaks to the forges Conveyor serves (GitHub, GitLab, Gitea
// and Forgejo): it verifies webhook signatures (Verify), turns webhook
// payloads into the one event model (Parse, DeliveryID), shapes a GitHub-like
// payload for the github.event context of workflows (GitHubPayload), and
// reports commit statuses back (StatusClient, with Retry for transient
// failures).
//
// Forgejo is accepted wherever a forge name is taken and is treated as Gitea,
// which it is a fork of; events it produces say Forge "gitea".
//
// The package does pure work on bytes and headers except StatusClient, which
// takes its *http.Client from the caller. forgetest holds a recording HTTP
// server for tests of code that sets statuses.
package forge
