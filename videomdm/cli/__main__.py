from videomdm.cli import app

app()
