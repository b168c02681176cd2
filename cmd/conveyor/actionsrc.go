package main

import (
	"flag"
	"os"
	"path/filepath"

	"github.com/conveyor-ci/conveyor/internal/actions"
)

// actionFlags are where remote actions come from: --actions-url,
// --actions-token and --offline, on run, server and agent.
type actionFlags struct {
	url, token string
	offline    bool
}

// register adds the flags; fromEnv gives them their CONVEYOR_* defaults
// (server reads the environment for every flag itself).
func (a *actionFlags) register(fs *flag.FlagSet, fromEnv bool) {
	url, token := actions.DefaultBaseURL, ""
	offline := false
	if fromEnv {
		if v := os.Getenv("CONVEYOR_ACTIONS_URL"); v != "" {
			url = v
		}
		token = os.Getenv("CONVEYOR_ACTIONS_TOKEN")
		offline = os.Getenv("CONVEYOR_OFFLINE") == "1" || os.Getenv("CONVEYOR_OFFLINE") == "true"
	}
	fs.StringVar(&a.url, "actions-url", url, "base URL remote actions are cloned from as URL/owner/repo: a mirror, or file:///dir (env CONVEYOR_ACTIONS_URL)")
	fs.StringVar(&a.token, "actions-token", token, "token for private action repositories (env CONVEYOR_ACTIONS_TOKEN; prefer the env: a flag shows in ps)")
	fs.BoolVar(&a.offline, "offline", offline, "use only cached actions, never fetch (env CONVEYOR_OFFLINE=1)")
}

// open returns the action cache in dir.
func (a *actionFlags) open(dir string) (*actions.Cache, error) {
	return actions.New(actions.Options{Dir: dir, BaseURL: a.url, Token: a.token, Offline: a.offline})
}

// userActionsDir is the action cache of `conveyor run`:
// ~/.cache/conveyor/actions (XDG_CACHE_HOME honoured).
func userActionsDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "conveyor", "actions"), nil
}
