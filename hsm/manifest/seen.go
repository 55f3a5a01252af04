package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tradecore/tradecore/internal/atomicfile"
)

// LoadHead reads a Head saved by SaveHead. A missing file is the zero Head
// (nothing seen yet) with no error.
func LoadHead(path string) (Head, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Head{}, nil
	}
	if err != nil {
		return Head{}, fmt.Errorf("manifest: read seen state: %w", err)
	}
	var h Head
	if err := json.Unmarshal(b, &h); err != nil || h.Size == 0 || !validID(h.FirstKeyID) || len(h.Hash) != 64 {
		return Head{}, fmt.Errorf("manifest: seen state %s is corrupt: restore it from a copy, or delete it only after checking the manifest against the audit log", path)
	}
	return h, nil
}

// SaveHead writes h to path atomically (temp file, fsync, rename, fsync of the folder), creating
// the folder with mode 0700.
func SaveHead(path string, h Head) error {
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("manifest: seen state: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("manifest: seen state: %w", err)
	}
	return nil
}

// VerifyFresh is Verify plus freshness: it refuses a manifest shorter than
// (ErrStale) or diverging from (ErrDiverged) the newest one recorded in the
// state file seenPath for this pinned key, and records the manifest there
// when it is newer. Each verifier keeps its own state file, somewhere the
// operator of the verified system cannot write.
func VerifyFresh(data []byte, pinnedFirstID, seenPath string) (*Verified, error) {
	v, err := Verify(data, pinnedFirstID)
	if err != nil {
		return nil, err
	}
	seen, err := LoadHead(seenPath)
	if err != nil {
		return nil, err
	}
	if err := v.CheckFresh(seen); err != nil {
		return nil, err
	}
	if h := v.Head(); h != seen {
		if err := SaveHead(seenPath, h); err != nil {
			return nil, err
		}
	}
	return v, nil
}
