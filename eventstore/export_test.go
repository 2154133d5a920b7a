package eventstore

// Internals the external tests compare against: the reference
// implementations that the fast paths must match byte for byte.
var (
	CanonicalizeReference      = canonicalizeSlow
	CanonicalizeFast           = canonicalizeFast
	CanonicalMetadata          = canonicalMetadata
	CanonicalMetadataReference = canonicalJSON
)
