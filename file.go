package deviceupdate

import "context"

// ClearedUpdate is a stored version that files clear deleted.
type ClearedUpdate struct {
	Key     RuleKey `json:"key"`
	Version Version `json:"version"`
	Bytes   int64   `json:"bytes"`
}

// ClearResult reports what files clear freed.
type ClearResult struct {
	Removed []ClearedUpdate `json:"removed"`
	Bytes   int64           `json:"bytes"`
}

// FileService manages the stored update files.
type FileService interface {
	// ClearFiles deletes every stored version that no rule references as
	// approved, pending or restore version (Lync's Clear-CsDeviceUpdateFile).
	ClearFiles(ctx context.Context, actor string) (*ClearResult, error)
}
