"""The IAEAD lab: a Streamlit app over :mod:`iaead_core` (run ``streamlit run app/main.py``)."""
