package sarif

// The subset of the SARIF 2.1.0 object model that Vega writes and reads.
// Field names follow the standard (OASIS SARIF 2.1.0, with errata 01);
// unknown fields of an imported document are ignored.

// Version is the only SARIF version Vega reads and writes.
const Version = "2.1.0"

// SchemaURI is the $schema of every exported document.
const SchemaURI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

// Log is a SARIF log file (§3.13).
type Log struct {
	Schema  string `json:"$schema,omitempty"`
	Version string `json:"version"`
	Runs    []Run  `json:"runs"`
}

// Run is one run of one tool (§3.14).
type Run struct {
	Tool               Tool                        `json:"tool"`
	Invocations        []Invocation                `json:"invocations,omitempty"`
	OriginalURIBaseIDs map[string]ArtifactLocation `json:"originalUriBaseIds,omitempty"`
	AutomationDetails  *AutomationDetails          `json:"automationDetails,omitempty"`
	Results            []Result                    `json:"results"`
	Taxonomies         []ToolComponent             `json:"taxonomies,omitempty"`
	Properties         map[string]any              `json:"properties,omitempty"`
}

// Tool is the analysis tool (§3.18).
type Tool struct {
	Driver     ToolComponent   `json:"driver"`
	Extensions []ToolComponent `json:"extensions,omitempty"`
}

// ToolComponent is a tool's driver or extension (§3.19).
type ToolComponent struct {
	Name           string                `json:"name"`
	Version        string                `json:"version,omitempty"`
	InformationURI string                `json:"informationUri,omitempty"`
	Rules          []ReportingDescriptor `json:"rules,omitempty"`
	Taxa           []ReportingDescriptor `json:"taxa,omitempty"`
}

// ReportingDescriptor describes a rule (§3.49).
type ReportingDescriptor struct {
	ID                   string                            `json:"id"`
	Name                 string                            `json:"name,omitempty"`
	ShortDescription     *MultiformatMessageString         `json:"shortDescription,omitempty"`
	FullDescription      *MultiformatMessageString         `json:"fullDescription,omitempty"`
	Help                 *MultiformatMessageString         `json:"help,omitempty"`
	HelpURI              string                            `json:"helpUri,omitempty"`
	DefaultConfiguration *ReportingConfiguration           `json:"defaultConfiguration,omitempty"`
	Relationships        []ReportingDescriptorRelationship `json:"relationships,omitempty"`
	Properties           map[string]any                    `json:"properties,omitempty"`
}

// ReportingDescriptorRelationship links a rule to another descriptor, such
// as a CWE taxon (§3.53).
type ReportingDescriptorRelationship struct {
	Target ReportingDescriptorReference `json:"target"`
	Kinds  []string                     `json:"kinds,omitempty"`
}

// ReportingDescriptorReference refers to a rule or taxon (§3.52).
type ReportingDescriptorReference struct {
	ID            string                  `json:"id,omitempty"`
	Index         *int                    `json:"index,omitempty"`
	ToolComponent *ToolComponentReference `json:"toolComponent,omitempty"`
}

// ToolComponentReference refers to a tool component (§3.54).
type ToolComponentReference struct {
	Name  string `json:"name,omitempty"`
	Index *int   `json:"index,omitempty"`
}

// ReportingConfiguration is a rule's default configuration (§3.50).
type ReportingConfiguration struct {
	Level string `json:"level,omitempty"`
}

// MultiformatMessageString is text with an optional Markdown form (§3.12).
type MultiformatMessageString struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

// Message is a result's message (§3.11).
type Message struct {
	Text     string `json:"text,omitempty"`
	Markdown string `json:"markdown,omitempty"`
	ID       string `json:"id,omitempty"`
}

// Invocation describes how the tool ran (§3.20).
type Invocation struct {
	ExecutionSuccessful bool   `json:"executionSuccessful"`
	StartTimeUTC        string `json:"startTimeUtc,omitempty"`
	EndTimeUTC          string `json:"endTimeUtc,omitempty"`
}

// AutomationDetails identifies the run (§3.17).
type AutomationDetails struct {
	ID   string `json:"id,omitempty"`
	GUID string `json:"guid,omitempty"`
}

// Result is one finding (§3.27).
type Result struct {
	RuleID              string                        `json:"ruleId,omitempty"`
	RuleIndex           *int                          `json:"ruleIndex,omitempty"`
	Rule                *ReportingDescriptorReference `json:"rule,omitempty"`
	Kind                string                        `json:"kind,omitempty"`
	Level               string                        `json:"level,omitempty"`
	Message             Message                       `json:"message"`
	Locations           []Location                    `json:"locations,omitempty"`
	Fingerprints        map[string]string             `json:"fingerprints,omitempty"`
	PartialFingerprints map[string]string             `json:"partialFingerprints,omitempty"`
	BaselineState       string                        `json:"baselineState,omitempty"`
	Properties          map[string]any                `json:"properties,omitempty"`
}

// Location is where a result was found (§3.28).
type Location struct {
	PhysicalLocation *PhysicalLocation `json:"physicalLocation,omitempty"`
}

// PhysicalLocation is a place in an artifact (§3.29).
type PhysicalLocation struct {
	ArtifactLocation *ArtifactLocation `json:"artifactLocation,omitempty"`
	Region           *Region           `json:"region,omitempty"`
}

// ArtifactLocation names an artifact by URI (§3.4).
type ArtifactLocation struct {
	URI       string `json:"uri,omitempty"`
	URIBaseID string `json:"uriBaseId,omitempty"`
}

// Region is a part of an artifact (§3.30).
type Region struct {
	StartLine int              `json:"startLine,omitempty"`
	EndLine   int              `json:"endLine,omitempty"`
	Snippet   *ArtifactContent `json:"snippet,omitempty"`
}

// ArtifactContent is literal content (§3.3).
type ArtifactContent struct {
	Text string `json:"text,omitempty"`
}
