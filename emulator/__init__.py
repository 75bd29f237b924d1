"""The local Azure emulator: ARM, Compute, Batch, locks, Resource Graph, Event Grid and Service Bus, under the real SDKs."""
