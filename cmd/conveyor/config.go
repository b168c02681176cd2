package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const defaultServer = "http://127.0.0.1:8080"

// cliConfig is what conveyor login keeps: the server and a token for it.
type cliConfig struct {
	Server string `json:"server"`
	Token  string `json:"token"`
	User   string `json:"user,omitempty"`
	Org    string `json:"org,omitempty"`
	CAFile string `json:"ca_file,omitempty"`
}

// configPath is $XDG_CONFIG_HOME/conveyor/config.json, or
// ~/.config/conveyor/config.json; CONVEYOR_CONFIG overrides it.
func configPath() (string, error) {
	if p := os.Getenv("CONVEYOR_CONFIG"); p != "" {
		return p, nil
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" || !filepath.IsAbs(dir) { // the XDG spec ignores relative paths
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no configuration folder: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "conveyor", "config.json"), nil
}

// loadConfig reads the configuration; a missing file is an empty one. A
// file that others may read is refused: it holds a token.
func loadConfig() (*cliConfig, string, error) {
	p, err := configPath()
	if err != nil {
		return nil, "", err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &cliConfig{}, p, nil
	}
	if err != nil {
		return nil, p, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, p, fmt.Errorf("%s is readable by others (mode %v): chmod 600 it", p, fi.Mode().Perm())
	}
	var c cliConfig
	if err := json.NewDecoder(f).Decode(&c); err != nil {
		return nil, p, fmt.Errorf("%s: %v", p, err)
	}
	return &c, p, nil
}

// saveConfig writes c with mode 0600 (its folder 0700), replacing the
// file at once so that no reader sees half of it.
func saveConfig(c *cliConfig) (string, error) {
	p, err := configPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return p, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".config-*.json")
	if err != nil {
		return p, err
	}
	defer os.Remove(tmp.Name())
	enc := json.NewEncoder(tmp)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		tmp.Close()
		return p, err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return p, err
	}
	if err := tmp.Close(); err != nil {
		return p, err
	}
	return p, os.Rename(tmp.Name(), p)
}

func sameServer(a, b string) bool {
	return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}

// fromConfig fills what flags and environment left empty from conveyor
// login's configuration: the server, and the token only when it is that
// server's (a token is never sent to another server).
func (c *clientCmd) fromConfig() error {
	if c.server != "" && c.token != "" {
		return nil
	}
	cfg, _, err := loadConfig()
	if err != nil {
		return err
	}
	if c.server == "" {
		c.server = cfg.Server
	}
	if c.server == "" {
		c.server = defaultServer
	}
	if c.token == "" && cfg.Token != "" && sameServer(cfg.Server, c.server) {
		c.token = cfg.Token
		if c.caFile == "" {
			c.caFile = cfg.CAFile
		}
	}
	return nil
}
