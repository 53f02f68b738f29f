"""Export services: the dictionary, the export file and its audit row, the de-identified
analysis archive, ODM and FHIR."""
