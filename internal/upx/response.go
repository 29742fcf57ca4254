package upx

import (
	"encoding/xml"
)

// Response is the answer to a poll (SPEC §5).
type Response struct {
	XMLName             xml.Name     `xml:"Response"`
	NumOfFiles          int          `xml:"NumOfFiles"`
	Version             string       `xml:"Version,omitempty"`
	BaseURL             string       `xml:"BaseURL,omitempty"`
	ExternalBaseURL     string       `xml:"ExternalBaseURL,omitempty"`
	Files               *Files       `xml:"Files,omitempty"`
	PollIntervalSeconds int          `xml:"PollIntervalSeconds"`
	PeerSharing         *PeerSharing `xml:"PeerSharing"`
}

// Files lists what to download from BaseURL.
type Files struct {
	File []File `xml:"File"`
}

// File is one file of an offer.
type File struct {
	Name          string `xml:"Name,attr"`
	SignatureFile string `xml:"SignatureFile,attr,omitempty"`
	Size          int64  `xml:"Size,attr"`
	SHA256        string `xml:"SHA256,attr"`
}

// PeerSharing tells the phone whether to share firmware with its peers.
type PeerSharing struct {
	Enabled bool `xml:"Enabled,attr"`
	Port    int  `xml:"Port,attr"`
}

// Marshal renders the response as XML.
func (r *Response) Marshal() ([]byte, error) {
	out, err := xml.Marshal(r)
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), out...), nil
}

// PeerPort is the port phones share firmware on (SPEC §9).
const PeerPort = 4051
