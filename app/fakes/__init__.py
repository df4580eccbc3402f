"""Local fake CRMs (HubSpot, TreadSoft) for developers, end-to-end tests and benchmarks."""
