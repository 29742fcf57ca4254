package phone

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/fsutil"
)

// The state folder's layout:
//
//	state.json                               what runs: State, replaced atomically
//	firmware/<UpdateType>/<Version>/<file>   the files of each running version
//	downloads/<sha256>-<file>                files being downloaded (resumed from their length)
const (
	stateFile    = "state.json"
	firmwareDir  = "firmware"
	downloadsDir = "downloads"
)

// State is what a phone remembers across restarts: the version each of
// its modules runs.
type State struct {
	Modules []ModuleState `json:"modules"`
}

// ModuleState is one module's running version and its installed files.
type ModuleState struct {
	UpdateType string          `json:"updateType"`
	Filename   string          `json:"filename"`
	Version    string          `json:"version"`
	Installed  time.Time       `json:"installed,omitzero"` // zero for the version the phone was set up with
	Files      []InstalledFile `json:"files,omitempty"`
}

// InstalledFile is a verified file of a running version.
type InstalledFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Module returns the state of the given update type, and whether there
// is one.
func (s State) Module(updateType string) (ModuleState, bool) {
	for _, m := range s.Modules {
		if m.UpdateType == updateType {
			return m, true
		}
	}
	return ModuleState{}, false
}

// with returns a copy of s with m in place of the module of its type.
func (s State) with(m ModuleState) State {
	out := State{Modules: make([]ModuleState, 0, len(s.Modules)+1)}
	replaced := false
	for _, old := range s.Modules {
		if old.UpdateType == m.UpdateType {
			old, replaced = m, true
		}
		out.Modules = append(out.Modules, old)
	}
	if !replaced {
		out.Modules = append(out.Modules, m)
	}
	return out
}

// LoadState reads the state in dir; a folder without one has the zero
// State.
func LoadState(dir string) (State, error) {
	var s State
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read phone state: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("read phone state %s: %w", filepath.Join(dir, stateFile), err)
	}
	return s, nil
}

// saveState replaces the state in dir atomically: after a crash it holds
// either the old state or the new one. Unless durable, the new one is
// renamed into place without fsync (Config.NoSync).
func saveState(dir string, s State, durable bool) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("save phone state: %w", err)
	}
	data = append(data, '\n')
	path := filepath.Join(dir, stateFile)
	if durable {
		err = fsutil.WriteFileAtomic(path, data, 0o644)
	} else if err = os.WriteFile(path+".tmp", data, 0o644); err == nil {
		err = os.Rename(path+".tmp", path)
	}
	if err != nil {
		return fmt.Errorf("save phone state: %w", err)
	}
	return nil
}
