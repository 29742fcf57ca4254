package cab

const (
	fixtureDir    = "../../../shared/testdata/cab/"
	lzxFixture    = fixtureDir + "lzx.cab"
	simpleFixture = fixtureDir + "simple.cab"
)
