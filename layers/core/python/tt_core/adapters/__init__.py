"""The only code that touches boto3 or anthropic."""
