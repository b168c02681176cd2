package secrets

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// KeyFileName is the key file's name in the data folder.
const KeyFileName = "secret.key"

// LoadKeyFile reads the key in path. A file that others than its owner
// may read or write is refused: the key opens every credential.
func LoadKeyFile(path string) (*Key, error) {
	const op = "secrets.LoadKeyFile"
	fi, err := os.Stat(path)
	if err != nil {
		return nil, errs.Wrap(op, errs.Invalid, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, errs.E(op, errs.Invalid, "key file %s has mode %04o: others may read it; make it readable by its owner only (chmod 600 %s)",
			path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Wrap(op, errs.Invalid, err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return nil, errs.E(op, errs.Invalid, "key file %s: %v", path, err)
	}
	return k, nil
}

// WriteKeyFile writes a new random key to path with mode 0600; an
// existing file is never overwritten.
func WriteKeyFile(path string) (*Key, error) {
	const op = "secrets.WriteKeyFile"
	text, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, errs.Wrap(op, errs.Other, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, errs.Wrap(op, errs.Invalid, err)
	}
	_, err = f.WriteString(text + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, errs.Wrap(op, errs.Other, err)
	}
	return ParseKey(text)
}

// LoadOrCreateKeyFile loads the key in path, creating it (mode 0600) on
// first start.
func LoadOrCreateKeyFile(path string) (k *Key, created bool, err error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		k, err := WriteKeyFile(path)
		if err != nil && errors.Is(err, fs.ErrExist) { // another process made it meanwhile
			k, err = LoadKeyFile(path)
			return k, false, err
		}
		return k, err == nil, err
	}
	k, err = LoadKeyFile(path)
	return k, false, err
}
