package upx

// The encoding/xml references, for the tests of package upx_test.
var (
	ParseRequestStd = parseRequestStd
	MarshalStd      = marshalStd
)
